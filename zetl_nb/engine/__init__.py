"""The integration engine: control plane, lifecycle state machine, prerequisites, scheduler."""
