"""CMRMotion algorithms: MOLLI/ShMOLLI T1 and R² fitting, motion correction (MOCOnet, classical)."""

#: motion-correction methods of `cmr motion` and the CMRMotion module
METHODS = ("moconet", "classical", "none")
