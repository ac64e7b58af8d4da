"""Training recipes (torch, accelerate). Not imported by the runtime."""
