"""The program layer: a stack file becomes typed config (:mod:`~infra.stack.config`), the
components' args (:mod:`~infra.stack.components`) and resources (:mod:`~infra.stack.program`);
offline, the same program is planned (:mod:`~infra.stack.plan`) and diffed
(:mod:`~infra.stack.diff`) under one set of Pulumi mocks (:mod:`~infra.stack.mocks`), and
releases move between stack files (:mod:`~infra.stack.promotion`)."""
