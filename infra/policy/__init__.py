"""The ml-endpoints CrossGuard policy pack: checks in :mod:`infra.policy.checks`."""
