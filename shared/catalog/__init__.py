"""The model catalogue: known configs, their costs (channels, MACs) and their edit directions."""
