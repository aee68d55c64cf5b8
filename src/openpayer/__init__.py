"""OpenPayer: the CMS Interoperability and Patient Access platform for a US health plan."""

__version__ = "0.1.0"
