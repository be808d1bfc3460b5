"""The life of an item: guarded state transitions, events, sending to the queue, recovery, webhooks, quality, metrics."""
