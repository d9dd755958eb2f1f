"""vmxkb: Intel SDM VMX rules as executable, traceable documentation."""

__version__ = "0.1.0"
