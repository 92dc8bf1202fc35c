"""The model side: the CLIP adapter, hook sites, steering hooks and the SAE core with its file formats."""
