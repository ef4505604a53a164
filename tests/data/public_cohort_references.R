# Reference numbers for tests/training/test_public_cohorts.py, from R's survival and riskRegression.
#
#   python3 tests/public_cohorts.py /tmp/cohorts
#   Rscript tests/data/public_cohort_references.R /tmp/cohorts
#
# writes tests/data/public_cohort_coxph.csv (Cox and cause-specific Cox coefficients, Efron ties) and
# tests/data/public_cohort_csc.csv (cause-specific Cox absolute risks, riskRegression CSC + predictRisk),
# each starting with '#' lines that say which R, which package versions and which calls made them.
# R and the packages come from Debian's packages (r-base-core, r-cran-survival, r-cran-riskregression).

suppressPackageStartupMessages({
  library(survival)
  library(riskRegression)
  library(prodlim)
})

args <- commandArgs(trailingOnly = TRUE)
folder <- if (length(args) >= 1) args[[1]] else "/tmp/cohorts"
script_dir <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE))))
provenance <- c(
  sprintf("# %s; survival %s; riskRegression %s; prodlim %s; written %s by tests/data/public_cohort_references.R",
          R.version.string, packageVersion("survival"), packageVersion("riskRegression"),
          packageVersion("prodlim"), format(Sys.Date()))
)

write_with_provenance <- function(table, name, calls) {
  path <- file.path(script_dir, name)
  writeLines(c(provenance, paste0("# ", calls)), path)
  suppressWarnings(write.table(table, path, sep = ",", row.names = FALSE, col.names = TRUE, append = TRUE,
                               quote = TRUE))
}

# --- Cox coefficients (Efron ties, survival::coxph defaults) ---------------------------------------
kidney <- read.csv(file.path(folder, "kidney.csv"))
flchain <- read.csv(file.path(folder, "flchain.csv"))
flchain$sex <- factor(flchain$sex, levels = c("F", "M"))
flchain$mgus <- as.numeric(flchain$mgus == "yes")
flchain$death <- as.numeric(as.character(flchain$death) %in% c("True", "TRUE"))

calls_cox <- c(
  "kidney: coxph(Surv(time, death) ~ age + black_male + white_male + black_female, data = kidney, ties = 'efron')",
  paste("flchain: coxph(Surv(futime, death) ~ age + sex + mgus + flc.grp + kappa + lambda + sample.yr,",
        "data = flchain, ties = 'efron'), sex a factor with reference F, mgus = (mgus == 'yes')")
)
fits <- list(
  kidney = coxph(Surv(time, death) ~ age + black_male + white_male + black_female, data = kidney, ties = "efron"),
  flchain = coxph(Surv(futime, death) ~ age + sex + mgus + flc.grp + kappa + lambda + sample.yr, data = flchain,
                  ties = "efron")
)
coefficients <- do.call(rbind, lapply(names(fits), function(name) {
  fit <- fits[[name]]
  data.frame(cohort = name, term = names(coef(fit)), coef = sprintf("%.12g", coef(fit)),
             se = sprintf("%.12g", sqrt(diag(vcov(fit)))))
}))
coefficients$term <- sub("^sexM$", "sex_M", coefficients$term)

# --- Cause-specific Cox absolute risks (riskRegression CSC + predictRisk, product-limit) ---------------
# (cgvhd, not bmt: CSC stops on bmt's two rows with ftime = 0, which coxph and cnslrisk accept)
cgvhd <- read.csv(file.path(folder, "cgvhd.csv"))
cgvhd$dx <- factor(cgvhd$dx, levels = c("AML", "CML"))
csc <- CSC(Hist(ftime, status) ~ age + dx, data = cgvhd)
times <- c(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5)
newdata <- expand.grid(age = c(20, 40, 60), dx = factor(c("AML", "CML"), levels = c("AML", "CML")))
risks <- do.call(rbind, lapply(seq_along(csc$causes), function(k) {
  risk <- predictRisk(csc, newdata = newdata, times = times, cause = csc$causes[[k]])
  data.frame(cohort = "cgvhd", age = rep(newdata$age, each = length(times)),
             dx = rep(as.character(newdata$dx), each = length(times)), cause = csc$causes[[k]],
             time = rep(times, times = nrow(newdata)), risk = sprintf("%.15g", as.vector(t(risk))))
}))
calls <- c(
  "cgvhd: csc <- CSC(Hist(ftime, status) ~ age + dx, data = cgvhd) (cause-specific coxph, Efron ties; status 0 censored; dx a factor with reference AML)",
  "predictRisk(csc, newdata = expand.grid(age = c(20, 40, 60), dx = c('AML', 'CML')), times = c(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5), cause = k) for each cause k")
write_with_provenance(risks, "public_cohort_csc.csv", calls)
cause_coefficients <- do.call(rbind, lapply(seq_along(csc$causes), function(k) {
  fit <- csc$models[[k]]
  data.frame(cohort = paste0("cgvhd cause ", csc$causes[[k]]), term = sub("^dxCML$", "dx_CML", names(coef(fit))),
             coef = sprintf("%.12g", coef(fit)), se = sprintf("%.12g", sqrt(diag(vcov(fit)))))
}))
write_with_provenance(rbind(coefficients, cause_coefficients), "public_cohort_coxph.csv",
                      c(calls_cox, "cgvhd cause k: the cause-specific coxph of the CSC above (csc$models[[k]])"))
