"""Models of KVM behaviours, and the exploration that checks them against the SDM model."""
