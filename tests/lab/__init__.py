"""Lab tests: a real Linux router in network namespaces, checked against the kernel's conntrack."""
