"""The pure core of coursegen: events, lifecycles, the reducer, decide, and the hash chain."""
