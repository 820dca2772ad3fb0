"""GCP targets: ``ArtifactRegistry`` (:mod:`infra.gcp.artifact_registry`) and ``VertexEndpoint``
(:mod:`infra.gcp.vertex`, deployed through the dynamic provider in
:mod:`infra.gcp.vertex_provider`), their typed args (:mod:`infra.gcp.config`), and the checks of
``ml-endpoints verify`` (:mod:`infra.gcp.verify`).

Import the submodules directly: ``verify`` must work without Pulumi installed.
"""
