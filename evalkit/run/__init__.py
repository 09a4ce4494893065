"""Running an evaluation: planning tasks, the client's dispatch through a strategy's stages, the
runner, resume journals, manifests, run directories (rundir) and the passes over a saved run
(rescore, judging)."""
