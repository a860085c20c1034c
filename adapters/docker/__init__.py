"""Docker engines reached with aiodocker."""
