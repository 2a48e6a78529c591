"""Played games turned into updates: rewards, advantages, the GRPO and SFT losses, runs and checkpoints."""
