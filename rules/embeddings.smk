# Stage: embeddings (rules are added by the stage's issue)
