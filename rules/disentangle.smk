# Stage: disentangle (rules are added by the stage's issue)
