"""Real-time card fraud scoring from events, on synthetic transactions."""
