# twinflow: patient digital twins from imaging, variant calls and labs.
# Configuration: config/config.yaml (every key explained in config/README.md).

configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/ingest.smk"


rule all:
    input:
        all_targets(),
    default_target: True
