"""Conformance to the implementation guides we serve: their metadata, profiles and required searches.

`metadata` reads the vendored index of the IG packages (`data/ig-conformance.json.gz`, built by
`scripts/vendor_ig_conformance.py`); `capability` contributes what the guides ask of the
CapabilityStatement (`instantiates`, `implementationGuide`, `supportedProfile`).
"""
