"""CMRMotion algorithms: MOLLI/ShMOLLI T1 and R² fitting, motion correction (MOCOnet, classical)."""
