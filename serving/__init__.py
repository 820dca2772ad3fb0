"""ml-endpoints serving: one container for SageMaker, Vertex AI and Kubernetes."""

__version__ = "0.1.0"
