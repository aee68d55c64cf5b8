# ruff: noqa: E501
"""Drugs of the synthetic formulary and of the pharmacy claims (see PROVENANCE.md).

Columns (pipe-separated):
  key | RxNorm RXCUI | RxNorm term type | RxNorm name | package NDC (11-digit, 5-4-2 without hyphens) |
  product label | brand (B) or generic (G) product | generic equivalent available (Y/N) | dispense unit |
  units per 30 days | unit cost in cents | sig | use (chronic/acute) | utilization management flags
  (PA prior authorization, ST step therapy, QL quantity limit) | indications (ICD-10-CM, space-separated)

Unit costs are synthetic "list prices" for realistic claim amounts, not a price list.
"""

DRUGS_PSV = """\
lisinopril10|314076|SCD|lisinopril 10 MG Oral Tablet|00093111310|Lisinopril 10 mg tablet (Teva)|G|Y|tablet|30|12|Take 1 tablet by mouth once daily|chronic||I10
amlodipine5|197361|SCD|amlodipine 5 MG Oral Tablet|00069153068|Norvasc 5 mg tablet|B|Y|tablet|30|350|Take 1 tablet by mouth once daily|chronic||I10
amlodipine10|308135|SCD|amlodipine 10 MG Oral Tablet|00069154068|Norvasc 10 mg tablet|B|Y|tablet|30|480|Take 1 tablet by mouth once daily|chronic||I10
atorvastatin80|259255|SCD|atorvastatin 80 MG Oral Tablet|00071015823|Lipitor 80 mg tablet|B|Y|tablet|30|1300|Take 1 tablet by mouth once daily at bedtime|chronic||E78.5 I25.10
simvastatin20|312961|SCD|simvastatin 20 MG Oral Tablet|00006074031|Zocor 20 mg tablet|B|Y|tablet|30|700|Take 1 tablet by mouth every evening|chronic||E78.5
ezetimibe10|349556|SCD|ezetimibe 10 MG Oral Tablet|66582041431|Zetia 10 mg tablet|B|Y|tablet|30|1100|Take 1 tablet by mouth once daily|chronic|ST|E78.5
metoprolol50|866436|SCD|24 HR metoprolol succinate 50 MG Extended Release Oral Tablet|00186109205|Toprol-XL 50 mg tablet|B|Y|tablet|30|300|Take 1 tablet by mouth once daily|chronic||I10 I48.91 I50.9 I25.10
clopidogrel75|309362|SCD|clopidogrel 75 MG Oral Tablet|63653117106|Plavix 75 mg tablet|B|Y|tablet|30|900|Take 1 tablet by mouth once daily|chronic||I25.10
warfarin5|855332|SCD|warfarin sodium 5 MG Oral Tablet|00056017270|Coumadin 5 mg tablet|B|Y|tablet|30|250|Take 1 tablet by mouth once daily or as directed|chronic||I48.91
apixaban5|1364430|SCD|apixaban 5 MG Oral Tablet|00003089421|Eliquis 5 mg tablet|B|N|tablet|60|980|Take 1 tablet by mouth twice daily|chronic||I48.91
rivaroxaban20|1232086|SCD|rivaroxaban 20 MG Oral Tablet|50458057930|Xarelto 20 mg tablet|B|N|tablet|30|1950|Take 1 tablet by mouth once daily with the evening meal|chronic||I48.91
furosemide40|310429|SCD|furosemide 40 MG Oral Tablet|00039006013|Lasix 40 mg tablet|B|Y|tablet|30|120|Take 1 tablet by mouth once daily in the morning|chronic||I50.9 N18.30
spironolactone25|313096|SCD|spironolactone 25 MG Oral Tablet|00025100131|Aldactone 25 mg tablet|B|Y|tablet|30|200|Take 1 tablet by mouth once daily|chronic||I50.9
metformin500|860975|SCD|24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet|00087606313|Glucophage XR 500 mg tablet|B|Y|tablet|60|150|Take 2 tablets by mouth once daily with the evening meal|chronic||E11.9 E11.40
sitagliptin100|665033|SCD|sitagliptin 100 MG Oral Tablet|00006027731|Januvia 100 mg tablet|B|N|tablet|30|1800|Take 1 tablet by mouth once daily|chronic|ST|E11.9
linagliptin5|1100702|SCD|linagliptin 5 MG Oral Tablet|00597014030|Tradjenta 5 mg tablet|B|N|tablet|30|1850|Take 1 tablet by mouth once daily|chronic|ST|E11.9
empagliflozin10|1545658|SCD|empagliflozin 10 MG Oral Tablet|00597015230|Jardiance 10 mg tablet|B|N|tablet|30|2000|Take 1 tablet by mouth once daily in the morning|chronic|ST|E11.9 I50.9
dulaglutide|1551300|SBD|0.5 ML dulaglutide 1.5 MG/ML Pen Injector [Trulicity]|00002143380|Trulicity 0.75 mg/0.5 mL pen|B|N|pen|4|25000|Inject 0.75 mg under the skin once weekly|chronic|PA QL|E11.9
liraglutide|897122|SCD|3 ML liraglutide 6 MG/ML Pen Injector|00169406012|Victoza 18 mg/3 mL pen|B|N|pen|2|35000|Inject 1.2 mg under the skin once daily|chronic|PA QL|E11.9
glargine|847232|SBD|3 ML insulin glargine 100 UNT/ML Pen Injector [Lantus]|00088221905|Lantus SoloStar 100 units/mL pen|B|N|pen|5|8000|Inject 20 units under the skin at bedtime|chronic||E11.9
lispro|865098|SBD|insulin lispro 100 UNT/ML Injectable Solution [Humalog]|00002751001|Humalog 100 units/mL 10 mL vial|B|N|vial|1|27500|Inject per sliding scale before meals|chronic||E11.9
albuterol|745679|SCD|200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler|00173068220|Ventolin HFA 90 mcg inhaler|B|Y|inhaler|1|6000|Inhale 2 puffs every 4 to 6 hours as needed for wheezing|chronic||J45.909 J44.9
fluticasone44|895994|SCD|120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler|00173071820|Flovent HFA 44 mcg inhaler|B|Y|inhaler|1|20000|Inhale 2 puffs twice daily|chronic||J45.909
advair|896209|SCD|60 ACTUAT fluticasone propionate 0.25 MG/ACTUAT / salmeterol 0.05 MG/ACTUAT Dry Powder Inhaler|00173069600|Advair Diskus 250/50 inhaler|B|Y|inhaler|1|40000|Inhale 1 puff twice daily|chronic|ST|J44.9 J45.909
montelukast10|200224|SCD|montelukast 10 MG Oral Tablet|00006011731|Singulair 10 mg tablet|B|Y|tablet|30|700|Take 1 tablet by mouth every evening|chronic||J45.909 J30.2
fluoxetine20|310385|SCD|fluoxetine 20 MG Oral Capsule|00777310502|Prozac 20 mg Pulvule|B|Y|capsule|30|1500|Take 1 capsule by mouth once daily in the morning|chronic||F32.9 F41.1
sertraline50|312941|SCD|sertraline 50 MG Oral Tablet|00049490066|Zoloft 50 mg tablet|B|Y|tablet|30|1200|Take 1 tablet by mouth once daily|chronic||F32.9 F41.1
escitalopram10|349332|SCD|escitalopram 10 MG Oral Tablet|00456201001|Lexapro 10 mg tablet|B|Y|tablet|30|1400|Take 1 tablet by mouth once daily|chronic||F41.1 F32.9
pantoprazole40|314200|SCD|pantoprazole 40 MG Delayed Release Oral Tablet|00008084181|Protonix 40 mg tablet|B|Y|tablet|30|1200|Take 1 tablet by mouth once daily before breakfast|chronic||K21.9
levothyroxine50|966247|SBD|levothyroxine sodium 0.05 MG Oral Tablet [Synthroid]|00074455290|Synthroid 50 mcg tablet|B|Y|tablet|30|150|Take 1 tablet by mouth once daily on an empty stomach|chronic||E03.9
gabapentin300|310431|SCD|gabapentin 300 MG Oral Capsule|00071080524|Neurontin 300 mg capsule|B|Y|capsule|90|300|Take 1 capsule by mouth three times daily|chronic||E11.40 M54.50
tamsulosin|863669|SCD|tamsulosin hydrochloride 0.4 MG Oral Capsule|00597005801|Flomax 0.4 mg capsule|B|Y|capsule|30|800|Take 1 capsule by mouth once daily 30 minutes after the same meal|chronic||N40.0
alendronate70|904419|SCD|alendronic acid 70 MG Oral Tablet|00006003144|Fosamax 70 mg tablet|B|Y|tablet|4|2500|Take 1 tablet by mouth once weekly with a full glass of water|chronic||M81.0
medroxyprogesterone|1000126|SCD|1 ML medroxyprogesterone acetate 150 MG/ML Injection|00009074630|Depo-Provera CI 150 mg/mL|B|Y|syringe|1|24000|Inject 150 mg intramuscularly every 3 months|chronic||Z30.09
epinephrine|1870230|SCD|NDA020800 0.3 ML epinephrine 1 MG/ML Auto-Injector|49502050002|EpiPen 0.3 mg auto-injector 2-Pak|B|Y|pack|1|65000|Inject 0.3 mg into the thigh once as needed for anaphylaxis|chronic||Z91.010
epoetin4000|205923|SBD|1 ML epoetin alfa 4000 UNT/ML Injection [Epogen]|55513014810|Epogen 4,000 units/mL vial|B|N|vial|4|20000|Inject 4,000 units under the skin once weekly|chronic|PA|N18.30
diazepam5|197591|SCD|diazepam 5 MG Oral Tablet|00140000501|Valium 5 mg tablet|B|Y|tablet|30|400|Take 1 tablet by mouth up to twice daily as needed for muscle spasm|chronic|QL|M54.50
oxycodoneapap|1049221|SCD|acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet|63481062370|Percocet 5/325 mg tablet|B|Y|tablet|20|800|Take 1 tablet by mouth every 6 hours as needed for severe pain|acute|QL|
amoxicillin500|308191|SCD|amoxicillin 500 MG Oral Capsule|00093310905|Amoxicillin 500 mg capsule (Teva)|G|Y|capsule|30|25|Take 1 capsule by mouth three times daily for 10 days|acute||J02.0 H66.90 J01.90
azithromycin250|308460|SCD|azithromycin 250 MG Oral Tablet|00069306075|Zithromax Z-Pak 250 mg tablets|B|Y|tablet|6|1300|Take 2 tablets on day 1, then 1 tablet daily on days 2 to 5|acute||J20.9 J18.9
oseltamivir75|261315|SCD|oseltamivir 75 MG Oral Capsule|00004080085|Tamiflu 75 mg capsule|B|Y|capsule|10|1500|Take 1 capsule by mouth twice daily for 5 days|acute|QL|J11.1
fluconazole150|197698|SCD|fluconazole 150 MG Oral Tablet|00049350079|Diflucan 150 mg tablet|B|Y|tablet|1|1900|Take 1 tablet by mouth once|acute||B37.31
"""
