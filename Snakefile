# twinflow: patient digital twins from imaging, variant calls and labs.
# Configuration: config/config.yaml (every key explained in config/README.md). A --configfile
# replaces it entirely (replace-workflow-config in the workflow profiles).

configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/ingest.smk"
include: "rules/segment.smk"
include: "rules/pgx.smk"
include: "rules/estimate.smk"
include: "rules/simulate.smk"
include: "rules/twin.smk"
include: "rules/report.smk"
include: "rules/trials.smk"
include: "rules/cohort.smk"
include: "rules/hospital.smk"


report: "report/workflow.rst"


rule all:
    input:
        all_targets(),
        TRIALS.targets(),
        tf_hospital.targets(config),
    default_target: True
