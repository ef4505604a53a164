# Reference figures for tests/training/test_bootstrap.py: R rms validate() of a Cox model on lifelines' Rossi data.
# Usage: Rscript rms_validate_rossi.R ROSSI.csv OUT.csv   (ROSSI.csv: lifelines.datasets.load_rossi() written as CSV)
suppressMessages(library(rms))
args <- commandArgs(trailingOnly = TRUE)
rossi <- read.csv(args[1])
set.seed(20261206)
fit <- cph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = rossi, x = TRUE, y = TRUE,
           surv = TRUE, method = "efron")
B <- 2000
v <- validate(fit, B = B, dxy = TRUE)
out <- data.frame(index = rownames(v), apparent = v[, "index.orig"], optimism = v[, "optimism"],
                  corrected = v[, "index.corrected"], n = v[, "n"])
header <- c(
  sprintf("# R rms validate(cph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, method = 'efron'), B = %d, dxy = TRUE)", B),
  sprintf("# data: lifelines.datasets.load_rossi() (432 rows); set.seed(20261206); %s; rms %s; survival %s",
          R.version.string, packageVersion("rms"), packageVersion("survival")),
  "# Dxy = 2 (C - 0.5); Slope = calibration slope of the linear predictor")
writeLines(header, args[2])
suppressWarnings(write.table(out, args[2], sep = ",", row.names = FALSE, append = TRUE))
