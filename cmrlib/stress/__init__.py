"""CMRStressT1: stress-to-rest T1 map registration and stress T1 reactivity (dT1) maps
(thesis ch. 3, appendix A.2; method card docs/methods/dt1.md)."""
