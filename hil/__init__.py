"""Hardware-in-the-loop rig: EV emulator, CSMS emulator, scenarios, fault injection."""
