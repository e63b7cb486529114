"""Scar quantification from LGE (with the matched cine): fusion U-Net, LGE-only U-Net, n-SD and FWHM."""
