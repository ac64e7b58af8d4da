"""Network definitions (torch; training and export only, never imported by the runtime)."""
