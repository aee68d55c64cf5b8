"""~110 real US cities (all 50 states + DC): a real ZIP code in the city, its centroid and an area code.

Extracted from the `zipcodes` 3.0.0 PyPI package (MIT); see PROVENANCE.md. Street addresses built on top of
these cities are synthetic.
"""

CITIES_CSV = """\
city,state,zip,lat,lon,area_code,county
New York,NY,10001,40.7484,-73.9967,212,New York County
Los Angeles,CA,90012,34.0614,-118.2385,213,Los Angeles County
Chicago,IL,60601,41.8858,-87.6181,312,Cook County
Houston,TX,77002,29.7594,-95.3594,713,Harris County
Phoenix,AZ,85004,33.4557,-112.0686,602,Maricopa County
Philadelphia,PA,19102,39.9489,-75.1661,215,Philadelphia County
San Antonio,TX,78205,29.4237,-98.4925,210,Bexar County
San Diego,CA,92101,32.7185,-117.1593,619,San Diego County
Dallas,TX,75201,32.7904,-96.8044,214,Dallas County
San Jose,CA,95113,37.3329,-121.8916,408,Santa Clara County
Austin,TX,78701,30.2713,-97.7426,512,Travis County
Jacksonville,FL,32202,30.3299,-81.6517,904,Duval County
Fort Worth,TX,76102,32.7589,-97.328,817,Tarrant County
Columbus,OH,43215,39.9671,-83.0044,614,Franklin County
Charlotte,NC,28202,35.229,-80.8419,704,Mecklenburg County
Indianapolis,IN,46201,39.775,-86.1093,317,Marion County
San Francisco,CA,94102,37.7813,-122.4167,415,San Francisco County
Seattle,WA,98101,47.6114,-122.3305,206,King County
Denver,CO,80202,39.7491,-104.9946,303,Denver County
Washington,DC,20001,38.9122,-77.0177,202,District of Columbia
Nashville,TN,37201,36.1657,-86.7781,615,Davidson County
Oklahoma City,OK,73102,35.4726,-97.5199,405,Oklahoma County
El Paso,TX,79901,31.7584,-106.4783,915,El Paso County
Boston,MA,02108,42.3576,-71.0684,617,Suffolk County
Portland,OR,97201,45.5078,-122.6897,503,Multnomah County
Las Vegas,NV,89101,36.1721,-115.1224,702,Clark County
Detroit,MI,48201,42.3474,-83.0604,313,Wayne County
Memphis,TN,38103,35.144,-90.048,901,Shelby County
Louisville,KY,40202,38.2507,-85.7476,502,Jefferson County
Baltimore,MD,21201,39.2946,-76.6252,410,Baltimore city
Milwaukee,WI,53202,43.0506,-87.8968,414,Milwaukee County
Albuquerque,NM,87102,35.0818,-106.6482,505,Bernalillo County
Tucson,AZ,85701,32.2139,-110.9694,520,Pima County
Fresno,CA,93721,36.7377,-119.7843,559,Fresno County
Sacramento,CA,95811,38.5762,-121.488,916,Sacramento County
Kansas City,MO,64106,39.1052,-94.5699,816,Jackson County
Mesa,AZ,85201,33.4317,-111.8469,480,Maricopa County
Atlanta,GA,30303,33.7525,-84.3888,404,Fulton County
Omaha,NE,68102,41.259,-95.9409,402,Douglas County
Colorado Springs,CO,80902,38.7536,-104.8063,719,El Paso County
Raleigh,NC,27601,35.7727,-78.6324,919,Wake County
Long Beach,CA,90802,33.7706,-118.182,562,Los Angeles County
Virginia Beach,VA,23451,36.8585,-76.0019,757,Virginia Beach city
Miami,FL,33130,25.7672,-80.2059,305,Miami-Dade County
Oakland,CA,94612,37.8085,-122.2668,510,Alameda County
Minneapolis,MN,55401,44.9835,-93.2683,612,Hennepin County
Tulsa,OK,74103,36.1539,-95.9954,918,Tulsa County
Tampa,FL,33602,27.9614,-82.4597,813,Hillsborough County
Arlington,TX,76010,32.7204,-97.0826,817,Tarrant County
New Orleans,LA,70112,29.9605,-90.0753,504,Orleans Parish
Wichita,KS,67202,37.6899,-97.3355,316,Sedgwick County
Cleveland,OH,44102,41.4735,-81.7398,216,Cuyahoga County
Bakersfield,CA,93301,35.3866,-119.0171,661,Kern County
Aurora,CO,80010,39.7398,-104.8562,303,Arapahoe County
Anaheim,CA,92801,33.8428,-117.9546,714,Orange County
Honolulu,HI,96813,21.3179,-157.8521,808,Honolulu County
Riverside,CA,92501,33.9924,-117.3694,951,Riverside County
Lexington,KY,40502,38.0174,-84.4854,859,Fayette County
Pittsburgh,PA,15222,40.4477,-79.9933,412,Allegheny County
Anchorage,AK,99501,61.2225,-149.8677,907,Anchorage Municipality
Cincinnati,OH,45202,39.1072,-84.502,513,Hamilton County
Saint Paul,MN,55101,44.9512,-93.0902,651,Ramsey County
Toledo,OH,43604,41.6614,-83.5249,419,Lucas County
Greensboro,NC,27401,36.0697,-79.7682,336,Guilford County
Newark,NJ,07102,40.732,-74.1765,973,Essex County
Lincoln,NE,68502,40.7893,-96.6938,402,Lancaster County
Buffalo,NY,14201,42.8967,-78.8846,716,Erie County
Fort Wayne,IN,46802,41.0707,-85.1543,260,Allen County
Orlando,FL,32801,28.5399,-81.3727,407,Orange County
Madison,WI,53703,43.0775,-89.3831,608,Dane County
Boise,ID,83702,43.6322,-116.2052,208,Ada County
Richmond,VA,23219,37.5463,-77.4378,804,Richmond city
Des Moines,IA,50307,41.6005,-93.6091,515,Polk County
Birmingham,AL,35203,33.521,-86.8066,205,Jefferson County
Spokane,WA,99201,47.6665,-117.4365,509,Spokane County
Salt Lake City,UT,84101,40.7559,-111.8967,801,Salt Lake County
Little Rock,AR,72201,34.7483,-92.2819,501,Pulaski County
Providence,RI,02903,41.82,-71.4158,401,Providence County
Jackson,MS,39201,32.2935,-90.1867,601,Hinds County
Hartford,CT,06103,41.7672,-72.676,860,Hartford County
Manchester,NH,03101,42.9929,-71.4633,603,Hillsborough County
Burlington,VT,05401,44.484,-73.2199,802,Chittenden County
Portland,ME,04101,43.6606,-70.2589,207,Cumberland County
Wilmington,DE,19801,39.7378,-75.5497,302,New Castle County
Charleston,WV,25301,38.349,-81.6306,304,Kanawha County
Charleston,SC,29401,32.7795,-79.9371,843,Charleston County
Sioux Falls,SD,57103,43.5374,-96.6864,605,Minnehaha County
Fargo,ND,58102,46.9209,-96.8318,218,Cass County
Billings,MT,59101,45.7745,-108.5005,406,Yellowstone County
Cheyenne,WY,82001,41.1437,-104.7962,307,Laramie County
Columbia,SC,29201,34.0004,-81.0334,803,Richland County
Montgomery,AL,36104,32.373,-86.3081,334,Montgomery County
Baton Rouge,LA,70801,30.4492,-91.1856,225,East Baton Rouge Parish
Knoxville,TN,37902,35.9625,-83.9209,865,Knox County
Savannah,GA,31401,32.0749,-81.0883,912,Chatham County
Rochester,NY,14604,43.1577,-77.608,585,Monroe County
Albany,NY,12202,42.6413,-73.7641,518,Albany County
Ann Arbor,MI,48103,42.2794,-83.784,734,Washtenaw County
Grand Rapids,MI,49503,42.9659,-85.6527,616,Kent County
Worcester,MA,01602,42.2703,-71.8417,508,Worcester County
Springfield,IL,62701,39.8,-89.6495,217,Sangamon County
Topeka,KS,66603,39.0553,-95.6802,785,Shawnee County
Santa Fe,NM,87501,35.6975,-105.9821,505,Santa Fe County
Reno,NV,89501,39.5268,-119.8113,775,Washoe County
Tallahassee,FL,32301,30.4286,-84.2593,850,Leon County
Chattanooga,TN,37402,35.0463,-85.3161,423,Hamilton County
Durham,NC,27701,35.9967,-78.8966,919,Durham County
Syracuse,NY,13202,43.041,-76.1489,315,Onondaga County
Dayton,OH,45402,39.7563,-84.1895,937,Montgomery County
Allentown,PA,18101,40.6026,-75.4691,610,Lehigh County
"""
