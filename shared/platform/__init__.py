"""Process plumbing both sides share: settings, logging, the queue's names and dispatcher, Redis nudges."""
