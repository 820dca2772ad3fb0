"""ml-endpoints infrastructure: Pulumi components for SageMaker, Vertex AI and Kubernetes."""
