"""The Open Inference Protocol over gRPC: translation to the engine only."""
