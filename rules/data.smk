# Stage: data (rules are added by the stage's issue)
