"""The worker: the only layer that knows Faust and Kafka."""
