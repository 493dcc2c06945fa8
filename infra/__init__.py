"""CDK app of the Execution Engine (DESIGN §7)."""
