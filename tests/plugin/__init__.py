"""Tests of the rpcd exec plugin router/openwrt/phonehome (POSIX sh + awk)."""
