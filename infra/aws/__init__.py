"""AWS targets: ``EcrRepository`` (:mod:`infra.aws.ecr`) and ``SageMakerEndpoint``
(:mod:`infra.aws.sagemaker`), their typed args (:mod:`infra.aws.config`), and the post-deploy
checks of ``ml-endpoints verify`` (:mod:`infra.aws.verify`).

Import the submodules directly: ``verify`` must work without Pulumi installed.
"""
