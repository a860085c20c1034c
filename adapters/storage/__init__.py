"""Where backup archives are kept."""
