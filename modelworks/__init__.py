"""modelworks: build deep-learning models end to end from one YAML file."""
