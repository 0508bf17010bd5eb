# cellbench: cell counting methods, rerun on DCC, ADI, MBM and VGG with one command.
#
#   snakemake --cores all                                  full benchmark (profiles/default)
#   snakemake --workflow-profile profiles/smoke            minutes on a CPU
#
# Stages, one rules file each: data -> train -> evaluate -> report (helpers in rules/common.smk).

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


wildcard_constraints:
    dataset=r"[A-Za-z0-9]+",
    method=r"[A-Za-z0-9_]+",
    seed=r"\d+",


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        rules.report.output,
