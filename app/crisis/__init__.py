"""Crisis response (situations sanitaires exceptionnelles): the plan, surge mode, its report."""
