"""Code systems and the small public code tables the generator draws from (see data/PROVENANCE.md).

Every table is a tuple of plain tuples so that it can be indexed and sampled quickly; nothing here is
patient data. Monetary amounts are integer cents (synthetic "list prices" loosely in line with US
averages, for realism only).
"""

from __future__ import annotations

# --- code system URIs ------------------------------------------------------------------------------
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
CDT = "http://www.ada.org/cdt"
NDC = "http://hl7.org/fhir/sid/ndc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
CVX = "http://hl7.org/fhir/sid/cvx"
NUCC = "http://nucc.org/provider-taxonomy"
REVENUE = "https://www.nubc.org/CodeSystem/RevenueCodes"
TYPE_OF_BILL = "https://www.nubc.org/CodeSystem/TypeOfBill"
POINT_OF_ORIGIN = "https://www.nubc.org/CodeSystem/PointOfOrigin"
ADMIT_TYPE = "https://www.nubc.org/CodeSystem/PriorityTypeOfAdmitOrVisit"
DISCHARGE_STATUS = "https://www.nubc.org/CodeSystem/PatDischargeStatus"
POA = "https://www.nubc.org/CodeSystem/PresentOnAdmissionIndicator"
MS_DRG = (
    "https://www.cms.gov/Medicare/Medicare-Fee-for-Service-Payment/AcuteInpatientPPS/"
    "MS-DRG-Classifications-and-Software"
)
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
TOOTH = "http://terminology.hl7.org/CodeSystem/ADAUniversalToothDesignationSystem"
SURFACE = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSurfaceCodes"
OMB_RACE = "urn:oid:2.16.840.1.113883.6.238"

# fmt: off
# --- ICD-10-CM diagnoses (FY2025 code set) ----------------------------------------------------------
# Chronic conditions: key, code, display, min_age, sex ("" any, "F", "M"), base prevalence by age band
# (<18, 18-44, 45-64, 65+), per-mille.
CHRONIC = (
    ("htn", "I10", "Essential (primary) hypertension", 18, "", (0, 120, 380, 620)),
    ("hld", "E78.5", "Hyperlipidemia, unspecified", 18, "", (0, 90, 330, 480)),
    ("t2dm", "E11.9", "Type 2 diabetes mellitus without complications", 18, "", (4, 40, 140, 230)),
    ("obesity", "E66.9", "Obesity, unspecified", 6, "", (120, 280, 330, 250)),
    ("asthma", "J45.909", "Unspecified asthma, uncomplicated", 2, "", (80, 80, 80, 70)),
    ("depression", "F32.9", "Major depressive disorder, single episode, unspecified", 12, "",
     (30, 90, 80, 60)),
    ("anxiety", "F41.1", "Generalized anxiety disorder", 12, "", (40, 100, 80, 50)),
    ("gerd", "K21.9", "Gastro-esophageal reflux disease without esophagitis", 18, "", (0, 70, 130, 160)),
    ("hypothyroid", "E03.9", "Hypothyroidism, unspecified", 18, "F", (0, 40, 110, 170)),
    ("oa_knee", "M17.11", "Unilateral primary osteoarthritis, right knee", 45, "", (0, 0, 90, 190)),
    ("copd", "J44.9", "Chronic obstructive pulmonary disease, unspecified", 40, "", (0, 0, 50, 110)),
    ("afib", "I48.91", "Unspecified atrial fibrillation", 50, "", (0, 0, 15, 90)),
    ("cad", "I25.10", "Atherosclerotic heart disease of native coronary artery without angina pectoris", 45,
     "", (0, 0, 50, 140)),
    ("chf", "I50.9", "Heart failure, unspecified", 55, "", (0, 0, 12, 60)),
    ("ckd3", "N18.30", "Chronic kidney disease, stage 3 unspecified", 50, "", (0, 0, 25, 90)),
    ("bph", "N40.0", "Benign prostatic hyperplasia without lower urinary tract symptoms", 50, "M",
     (0, 0, 150, 350)),
    ("osteoporosis", "M81.0", "Age-related osteoporosis without current pathological fracture", 55, "F",
     (0, 0, 40, 190)),
    ("back_pain", "M54.50", "Low back pain, unspecified", 18, "", (0, 60, 90, 90)),
    ("rhinitis", "J30.2", "Other seasonal allergic rhinitis", 4, "", (90, 90, 70, 50)),
    ("neuropathy", "E11.40", "Type 2 diabetes mellitus with diabetic neuropathy, unspecified", 40, "",
     (0, 0, 25, 45)),
    ("peanut", "Z91.010", "Allergy to peanuts", 1, "", (30, 15, 8, 4)),
    ("contraception", "Z30.09", "Encounter for other general counseling and advice on contraception", 16,
     "F", (40, 120, 0, 0)),
)

# Acute problems seen in office / urgent visits: code, display, min_age, weight, CPT E/M, drug key or "".
ACUTE = (
    ("J06.9", "Acute upper respiratory infection, unspecified", 0, 18, "99213", ""),
    ("J02.0", "Streptococcal pharyngitis", 3, 6, "99213", "amoxicillin500"),
    ("J02.9", "Acute pharyngitis, unspecified", 3, 6, "99213", ""),
    ("H66.90", "Otitis media, unspecified, unspecified ear", 0, 6, "99213", "amoxicillin500"),
    ("J01.90", "Acute sinusitis, unspecified", 5, 7, "99213", "amoxicillin500"),
    ("J20.9", "Acute bronchitis, unspecified", 5, 6, "99213", "azithromycin250"),
    ("J11.1", "Influenza due to unidentified influenza virus with other respiratory manifestations", 1, 5,
     "99214", "oseltamivir75"),
    ("N39.0", "Urinary tract infection, site not specified", 12, 5, "99213", ""),
    ("S93.401A", "Sprain of unspecified ligament of right ankle, initial encounter", 8, 4, "99213", ""),
    ("R51.9", "Headache, unspecified", 8, 4, "99213", ""),
    ("K52.9", "Noninfective gastroenteritis and colitis, unspecified", 1, 4, "99213", ""),
    ("L03.115", "Cellulitis of right lower limb", 5, 2, "99214", ""),
    ("M25.561", "Pain in right knee", 12, 4, "99213", ""),
    ("R10.9", "Unspecified abdominal pain", 5, 4, "99214", ""),
    ("L30.9", "Dermatitis, unspecified", 0, 4, "99212", ""),
)

# Preventive / screening diagnoses.
WELL_ADULT = ("Z00.00", "Encounter for general adult medical examination without abnormal findings")
WELL_ADULT_ABN = ("Z00.01", "Encounter for general adult medical examination with abnormal findings")
WELL_CHILD = ("Z00.129", "Encounter for routine child health examination without abnormal findings")
IMMUNIZATION_DX = ("Z23", "Encounter for immunization")
DENTAL_DX = ("Z01.20", "Encounter for dental examination and cleaning without abnormal findings")
CARIES_DX = ("K02.52", "Dental caries on pit and fissure surface penetrating into dentin")
SCREEN_COLON = ("Z12.11", "Encounter for screening for malignant neoplasm of colon")
SCREEN_BREAST = ("Z12.31", "Encounter for screening mammogram for malignant neoplasm of breast")

# --- CPT / HCPCS: code -> (display, typical charge in cents) ---------------------------------------
PROF = {
    "99202": ("Office/outpatient visit, new patient, straightforward MDM", 11500),
    "99203": ("Office/outpatient visit, new patient, low MDM", 17500),
    "99212": ("Office/outpatient visit, established patient, straightforward MDM", 9000),
    "99213": ("Office/outpatient visit, established patient, low MDM", 13500),
    "99214": ("Office/outpatient visit, established patient, moderate MDM", 19500),
    "99215": ("Office/outpatient visit, established patient, high MDM", 26500),
    "99283": ("Emergency department visit, moderate severity", 23000),
    "99284": ("Emergency department visit, high severity", 39000),
    "99223": ("Initial hospital inpatient care, high MDM", 33000),
    "99232": ("Subsequent hospital inpatient care, moderate MDM", 14500),
    "99238": ("Hospital inpatient discharge day management, 30 minutes or less", 14000),
    "99391": ("Periodic preventive medicine, established patient, infant", 19000),
    "99392": ("Periodic preventive medicine, established patient, age 1-4", 20500),
    "99393": ("Periodic preventive medicine, established patient, age 5-11", 20500),
    "99394": ("Periodic preventive medicine, established patient, age 12-17", 22000),
    "99395": ("Periodic preventive medicine, established patient, age 18-39", 23000),
    "99396": ("Periodic preventive medicine, established patient, age 40-64", 25000),
    "99397": ("Periodic preventive medicine, established patient, age 65+", 26500),
    "G0439": ("Annual wellness visit, includes a personalized prevention plan of service, subsequent visit",
        17500),
    "36415": ("Collection of venous blood by venipuncture", 1500),
    "80048": ("Basic metabolic panel (calcium, total)", 3500),
    "80061": ("Lipid panel", 5000),
    "83036": ("Hemoglobin; glycosylated (A1C)", 4000),
    "85025": ("Blood count; complete (CBC), automated, with automated differential WBC count", 3000),
    "84443": ("Thyroid stimulating hormone (TSH)", 5500),
    "87880": ("Infectious agent antigen detection by immunoassay, Streptococcus, group A", 3500),
    "87804": ("Infectious agent antigen detection by immunoassay, Influenza", 4000),
    "81003": ("Urinalysis, automated, without microscopy", 1500),
    "93000": ("Electrocardiogram, routine ECG with at least 12 leads; with interpretation and report", 7500),
    "71046": ("Radiologic examination, chest; 2 views", 12000),
    "73610": ("Radiologic examination, ankle; complete, minimum of 3 views", 11000),
    "73721": ("Magnetic resonance imaging, any joint of lower extremity; without contrast material", 120000),
    "77067": ("Screening mammography, bilateral, including computer-aided detection", 25000),
    "45378": ("Colonoscopy, flexible; diagnostic", 110000),
    "27447": ("Arthroplasty, knee, condyle and plateau; medial and lateral compartments", 250000),
    "44970": ("Laparoscopy, surgical, appendectomy", 140000),
    "47562": ("Laparoscopy, surgical; cholecystectomy", 150000),
    "59400": ("Routine obstetric care including antepartum care, vaginal delivery and postpartum care",
        420000),
    "90471": ("Immunization administration; 1 vaccine", 3000),
    "90656": ("Influenza virus vaccine, trivalent (IIV3), split virus, preservative free, 0.5 mL, IM", 2500),
    "90662": (
        "Influenza virus vaccine (IIV), split virus, preservative free, enhanced "
        "immunogenicity via increased antigen content, IM", 7500),
    "90715": ("Tetanus, diphtheria toxoids and acellular pertussis vaccine (Tdap), 7 years or older, IM",
        6000),
    "90750": ("Zoster (shingles) vaccine (HZV), recombinant, subunit, adjuvanted, IM", 20000),
    "90677": ("Pneumococcal conjugate vaccine, 20 valent (PCV20), IM", 28000),
    "90651": ("Human Papillomavirus vaccine, 9-valent (9vHPV), 2 or 3 dose schedule, IM", 29000),
    "90707": ("Measles, mumps and rubella virus vaccine (MMR), live, subcutaneous", 9000),
    "90700": (
        "Diphtheria, tetanus toxoids, and acellular pertussis vaccine (DTaP), younger than 7 years, IM",
        4000),
    "90716": ("Varicella virus vaccine (VAR), live, subcutaneous", 16000),
    "97110": ("Therapeutic procedure, 1 or more areas, each 15 minutes; therapeutic exercises", 6000),
    "90834": ("Psychotherapy, 45 minutes with patient", 15000),
}

# ICD-10-PCS procedures used on inpatient claims.
PCS = {
    "0SRC0J9": "Replacement of Right Knee Joint with Synthetic Substitute, Cemented, Open Approach",
    "0DTJ4ZZ": "Resection of Appendix, Percutaneous Endoscopic Approach",
    "0FT44ZZ": "Resection of Gallbladder, Percutaneous Endoscopic Approach",
    "10E0XZZ": "Delivery of Products of Conception, External Approach",
}

# --- Immunizations: key -> (CVX, CVX display, CPT, min age, max age in years) ------------------------
VACCINES = {
    "flu": ("140", "Influenza, seasonal, injectable, preservative free", "90656", 0, 64),
    "flu_hd": ("135", "Influenza, high dose seasonal, preservative-free", "90662", 65, 120),
    "tdap": ("115", "Tdap", "90715", 11, 120),
    "zoster": ("187", "zoster vaccine recombinant", "90750", 50, 120),
    "pcv20": ("216", "Pneumococcal conjugate PCV 20", "90677", 65, 120),
    "hpv": ("165", "HPV9", "90651", 9, 26),
    "mmr": ("03", "MMR", "90707", 1, 6),
    "dtap": ("20", "DTaP", "90700", 0, 6),
    "varicella": ("21", "varicella", "90716", 1, 12),
}

# --- Dental (CDT): code -> (display, charge in cents, coverage class) -------------------------------
CDT_CODES = {
    "D0120": ("Periodic oral evaluation - established patient", 6500, "preventive"),
    "D0150": ("Comprehensive oral evaluation - new or established patient", 9500, "preventive"),
    "D0274": ("Bitewings - four radiographic images", 7500, "preventive"),
    "D0272": ("Bitewings - two radiographic images", 5500, "preventive"),
    "D1110": ("Prophylaxis - adult", 11000, "preventive"),
    "D1120": ("Prophylaxis - child", 8000, "preventive"),
    "D1208": ("Topical application of fluoride - excluding varnish", 4000, "preventive"),
    "D1351": ("Sealant - per tooth", 5500, "preventive"),
    "D2391": ("Resin-based composite - one surface, posterior", 18000, "basic"),
}

# --- NUBC revenue codes -----------------------------------------------------------------------------
REV = {
    "0120": "Room & Board - Semi-Private Two Beds, General",
    "0250": "Pharmacy, General",
    "0258": "Pharmacy, IV Solutions",
    "0270": "Medical/Surgical Supplies and Devices, General",
    "0278": "Medical/Surgical Supplies and Devices, Other Implants",
    "0300": "Laboratory, General",
    "0301": "Laboratory, Chemistry",
    "0305": "Laboratory, Hematology",
    "0320": "Radiology - Diagnostic, General",
    "0324": "Radiology - Diagnostic, Chest X-Ray",
    "0360": "Operating Room Services, General",
    "0370": "Anesthesia, General",
    "0403": "Other Imaging Services, Screening Mammography",
    "0410": "Respiratory Services, General",
    "0420": "Physical Therapy, General",
    "0450": "Emergency Room, General",
    "0610": "Magnetic Resonance Technology (MRT), General",
    "0710": "Recovery Room, General",
    "0720": "Labor Room/Delivery, General",
    "0730": "EKG/ECG (Electrocardiogram), General",
    "0750": "Gastrointestinal Services, General",
}

# Inpatient stays: key, MS-DRG, DRG title, principal dx (code, display), PCS or "", LOS range,
# admission type, revenue lines (code, per day?, charge cents), min age, sex, surgeon CPT or "".
INPATIENT = (
    ("pneumonia", "194", "Simple Pneumonia and Pleurisy with CC",
     ("J18.9", "Pneumonia, unspecified organism"), "", (3, 5), "1",
     (("0120", True, 260000), ("0250", False, 180000), ("0300", False, 90000),
      ("0324", False, 45000), ("0410", False, 120000)),
     18, "", ""),
    ("chf", "292", "Heart Failure and Shock with CC", ("I50.9", "Heart failure, unspecified"), "", (3, 5),
     "1",
     (("0120", True, 270000), ("0250", False, 210000), ("0300", False, 110000),
      ("0730", False, 30000), ("0324", False, 45000)),
     50, "", ""),
    ("copd", "191", "Chronic Obstructive Pulmonary Disease with CC",
     ("J44.1", "Chronic obstructive pulmonary disease with (acute) exacerbation"), "", (2, 4), "1",
     (("0120", True, 250000), ("0250", False, 150000), ("0410", False, 140000), ("0300", False, 70000)), 45,
     "", ""),
    ("knee", "470", "Major Hip and Knee Joint Replacement or Reattachment of Lower Extremity without MCC",
     ("M17.11", "Unilateral primary osteoarthritis, right knee"), "0SRC0J9", (1, 3), "3",
     (("0120", True, 280000), ("0360", False, 1250000), ("0370", False, 240000),
      ("0278", False, 1100000), ("0710", False, 120000), ("0250", False, 90000),
      ("0420", False, 40000)),
     50, "", "27447"),
    ("appendix", "343", "Appendectomy without Complicated Principal Diagnosis without CC/MCC",
     ("K35.80", "Unspecified acute appendicitis"), "0DTJ4ZZ", (1, 2), "1",
     (("0120", True, 260000), ("0360", False, 850000), ("0370", False, 190000),
      ("0710", False, 90000), ("0250", False, 70000), ("0300", False, 40000)),
     6, "", "44970"),
    ("gallbladder", "418", "Laparoscopic Cholecystectomy without C.D.E. without CC/MCC",
     ("K80.20", "Calculus of gallbladder without cholecystitis without obstruction"), "0FT44ZZ", (1, 2), "2",
     (("0120", True, 260000), ("0360", False, 900000), ("0370", False, 190000),
      ("0710", False, 90000), ("0250", False, 60000)),
     25, "", "47562"),
    ("delivery", "807", "Vaginal Delivery without Sterilization or D&C without CC/MCC",
     ("O80", "Encounter for full-term uncomplicated delivery"), "10E0XZZ", (1, 2), "3",
     (("0120", True, 240000), ("0720", False, 520000), ("0250", False, 60000), ("0300", False, 30000)), 20,
     "F", "59400"),
)

# Outpatient facility scenarios: key, reason dx, lines (revenue, CPT or "", charge cents),
# professional lines (CPT, modifier), place of service of the professional claim.
OUTPATIENT = (
    ("er_chest", ("R07.9", "Chest pain, unspecified"),
     (("0450", "99284", 210000), ("0300", "80048", 32000), ("0730", "93000", 36000),
      ("0324", "71046", 52000)),
     (("99284", ""), ("71046", "26")), "23"),
    ("er_ankle", ("S93.401A", "Sprain of unspecified ligament of right ankle, initial encounter"),
     (("0450", "99283", 140000), ("0320", "73610", 48000)), (("99283", ""), ("73610", "26")), "23"),
    ("er_abdomen", ("R10.9", "Unspecified abdominal pain"),
     (("0450", "99284", 210000), ("0300", "80048", 32000), ("0305", "85025", 18000), ("0300", "81003", 9000)),
     (("99284", ""),), "23"),
    ("colonoscopy", ("Z12.11", "Encounter for screening for malignant neoplasm of colon"),
     (("0750", "45378", 310000), ("0370", "", 90000), ("0710", "", 60000)), (("45378", ""),), "22"),
    ("mammogram", ("Z12.31", "Encounter for screening mammogram for malignant neoplasm of breast"),
     (("0403", "77067", 42000),), (("77067", "26"),), "22"),
    ("knee_mri", ("M25.561", "Pain in right knee"), (("0610", "73721", 260000),), (("73721", "26"),), "22"),
)

# --- LOINC labs: key -> (code, display, UCUM unit, low, high, decimals) ------------------------------
LABS = {
    "glucose": ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 99, 0),
    "bun": ("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 7, 20, 0),
    "creatinine": ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.2, 2),
    "sodium": ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136, 145, 0),
    "potassium": ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, 1),
    "chloride": ("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 98, 107, 0),
    "co2": ("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", 22, 29, 0),
    "calcium": ("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.6, 10.3, 1),
    "chol": ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 100, 199, 0),
    "trig": ("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 40, 149, 0),
    "hdl": ("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 40, 90, 0),
    "ldl": ("13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation", "mg/dL", 40, 99,
        0),
    "a1c": ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6, 1),
    "wbc": ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.0, 10.5, 1),
    "hgb": ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 17.0, 1),
    "hct": ("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 36.0, 50.0, 1),
    "plt": ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150, 400, 0),
    "tsh": ("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 0.4, 4.5, 2),
}

# Panels: key -> (LOINC, display, CPT, member lab keys)
PANELS = {
    "bmp": ("51990-0", "Basic metabolic panel - Blood", "80048",
        ("glucose", "bun", "creatinine", "sodium", "potassium", "chloride", "co2", "calcium")),
    "lipid": ("57698-3", "Lipid panel with direct LDL - Serum or Plasma", "80061",
        ("chol", "trig", "hdl", "ldl")),
    "a1c": ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "83036", ("a1c",)),
    "cbc": ("58410-2", "CBC panel - Blood by Automated count", "85025", ("wbc", "hgb", "hct", "plt")),
    "tsh": ("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "84443", ("tsh",)),
}

# --- Allergies: code system, code, display, category, reaction (SNOMED code, display) ---------------
ALLERGENS = (
    ("http://www.nlm.nih.gov/research/umls/rxnorm", "7980", "penicillin G", "medication",
     ("247472004", "Wheal")),
    ("http://www.nlm.nih.gov/research/umls/rxnorm", "723", "amoxicillin", "medication",
     ("271807003", "Eruption of skin")),
    ("http://www.nlm.nih.gov/research/umls/rxnorm", "10180", "sulfamethoxazole", "medication",
     ("271807003", "Eruption of skin")),
    ("http://www.nlm.nih.gov/research/umls/rxnorm", "2670", "codeine", "medication", ("422587007", "Nausea")),
    ("http://www.nlm.nih.gov/research/umls/rxnorm", "1191", "aspirin", "medication", ("247472004", "Wheal")),
    ("http://snomed.info/sct", "111088007", "Latex (substance)", "environment", ("247472004", "Wheal")),
    ("http://snomed.info/sct", "256259004", "Pollen (substance)", "environment", ("76067001", "Sneezing")),
    ("http://snomed.info/sct", "264287008", "Animal dander (substance)", "environment",
     ("76067001", "Sneezing")),
    ("http://snomed.info/sct", "102263004", "Eggs (edible) (substance)", "food",
     ("21522001", "Abdominal pain")),
)

PEANUT = ("http://snomed.info/sct", "762952008", "Peanut (substance)", "food", ("39579001", "Anaphylaxis"))

# --- Directory: practitioner specialties ---------------------------------------------------------------
# key, NUCC code, display, Plan-Net ProviderRoleCS code, practice kind, relative weight, degree (v2-0360)
SPECIALTIES = (
    ("fm", "207Q00000X", "Family Medicine Physician", "ph", "primary", 16, "MD"),
    ("im", "207R00000X", "Internal Medicine Physician", "ph", "primary", 12, "MD"),
    ("peds", "208000000X", "Pediatrics Physician", "ph", "primary", 8, "MD"),
    ("np", "363L00000X", "Nurse Practitioner", "crnp", "primary", 8, "NP"),
    ("obgyn", "207V00000X", "Obstetrics & Gynecology Physician", "ph", "specialist", 5, "MD"),
    ("cardio", "207RC0000X", "Cardiovascular Disease Physician", "ph", "specialist", 4, "MD"),
    ("endo", "207RE0101X", "Endocrinology, Diabetes & Metabolism Physician", "ph", "specialist", 2, "MD"),
    ("gi", "207RG0100X", "Gastroenterology Physician", "ph", "specialist", 2, "MD"),
    ("ortho", "207X00000X", "Orthopaedic Surgery Physician", "ph", "specialist", 3, "MD"),
    ("derm", "207N00000X", "Dermatology Physician", "ph", "specialist", 2, "MD"),
    ("psych", "2084P0800X", "Psychiatry Physician", "ph", "specialist", 2, "MD"),
    ("pulm", "207RP1001X", "Pulmonary Disease Physician", "ph", "specialist", 2, "DO"),
    ("surg", "208600000X", "Surgery Physician", "ph", "hospital", 2, "MD"),
    ("em", "207P00000X", "Emergency Medicine Physician", "ph", "hospital", 3, "DO"),
    ("hosp", "208M00000X", "Hospitalist Physician", "ph", "hospital", 3, "MD"),
    ("rad", "2085R0202X", "Diagnostic Radiology Physician", "ph", "hospital", 2, "MD"),
    ("dentist", "1223G0001X", "General Practice Dentistry", "de", "dental", 6, "DDS"),
    ("pt", "225100000X", "Physical Therapist", "pt", "specialist", 2, "PT"),
    ("psychologist", "103T00000X", "Psychologist", "py", "specialist", 2, "PHD"),
)

# The specialties every directory has at least one practitioner of (used by the claim scenarios).
REQUIRED_SPECIALTIES = (
    "fm", "im", "peds", "obgyn", "cardio", "ortho", "surg", "em",
    "hosp", "rad", "dentist", "gi",
)

# Organization kinds -> (NUCC code, display, Plan-Net OrgTypeCS, HealthcareServiceCategoryCS,
# OrganizationAffiliationRoleCS, HealthcareService type (service-type code, display))
ORG_KINDS = {
    "primary": ("261QP2300X", "Primary Care Clinic/Center", "prvgrp", "outpat", "outpatient",
        ("124", "General Practice")),
    "specialist": ("261QM1300X", "Multi-Specialty Clinic/Center", "prvgrp", "outpat", "outpatient",
        ("124", "General Practice")),
    "dental": ("261QD0000X", "Dental Clinic/Center", "prvgrp", "dent", "outpatient",
        ("88", "General Dental")),
    "hospital": ("282N00000X", "General Acute Care Hospital", "fac", "hosp", "hospital",
        ("361", "Hospital Services")),
    "pharmacy": ("3336C0003X", "Community/Retail Pharmacy", "fac", "pharm", "pharmacy", ("64", "Pharmacy")),
    "lab": ("291U00000X", "Clinical Medical Laboratory", "fac", "lab", "laboratory",
        ("159", "Pathology - General")),
}
# fmt: on
