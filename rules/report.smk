# Stage: report (rules are added by the stage's issue)
