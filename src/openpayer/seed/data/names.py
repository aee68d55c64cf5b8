# ruff: noqa: SIM905
"""Name and street-name pools for synthetic people and addresses.

Given names: popular US baby names (Social Security Administration national data, public domain).
Family names: frequent US surnames (Census Bureau 2010 surname list, public domain).
Street names: generic US street names. Any combination of these is synthetic; see PROVENANCE.md.
"""

FEMALE_GIVEN = (
    "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty Sandra "
    "Margaret Ashley Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah Stephanie Dorothy Rebecca "
    "Sharon Laura Cynthia Amy Kathleen Angela Shirley Brenda Emma Anna Pamela Nicole Samantha Katherine "
    "Christine Helen Debra Rachel Carolyn Janet Maria Catherine Heather Diane Olivia Julie Joyce Victoria "
    "Ruth Virginia Lauren Kelly Christina Joan Evelyn Judith Andrea Hannah Megan Cheryl Jacqueline Martha "
    "Madison Teresa Gloria Sara Janice Ann Kathryn Abigail Sophia Frances Jean Alice Judy Isabella Julia "
    "Grace Amber Denise Danielle Marilyn Beverly Charlotte Natalie Theresa Diana Brittany Doris Kayla "
    "Alexis Lori Marie Ava Mia Harper Camila Aria Luna Chloe Zoe Lily Nora Elena Valentina Gabriela"
).split()

MALE_GIVEN = (
    "James Robert John Michael David William Richard Joseph Thomas Christopher Charles Daniel Matthew "
    "Anthony Mark Donald Steven Andrew Paul Joshua Kenneth Kevin Brian Timothy Ronald George Jason Edward "
    "Jeffrey Ryan Jacob Nicholas Gary Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel "
    "Gregory Alexander Patrick Frank Raymond Jack Dennis Jerry Tyler Aaron Jose Adam Nathan Henry Zachary "
    "Douglas Peter Kyle Noah Ethan Jeremy Christian Walter Keith Austin Roger Terry Sean Gerald Carl Dylan "
    "Harold Jordan Jesse Bryan Lawrence Arthur Gabriel Bruce Logan Billy Joe Alan Juan Elijah Willie Albert "
    "Wayne Randy Mason Vincent Liam Roy Bobby Caleb Bradley Russell Lucas Oliver Mateo Levi Sebastian Owen "
    "Julian Carlos Luis Miguel Diego Isaac Wyatt Hudson Ezra"
).split()

FAMILY = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark "
    "Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams "
    "Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker "
    "Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper "
    "Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James "
    "Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez "
    "Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez "
    "Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole "
    "Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens "
    "Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker "
    "Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz "
    "Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice "
    "Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley"
).split()

STREETS = (
    "Main St|Oak St|Maple Ave|Cedar St|Pine St|Elm St|Washington St|Lake St|Hill St|Park Ave|Walnut St|"
    "Sunset Blvd|Highland Ave|Franklin St|Jefferson Ave|Lincoln Ave|Jackson St|Church St|Spring St|"
    "Ridge Rd|Meadow Ln|Forest Dr|River Rd|Madison Ave|Chestnut St|Willow Way|Birch Ln|Cherry St|"
    "Center St|Union St|Mill Rd|Broad St|Prospect Ave|Summit Ave|Valley Rd|Orchard Ln|Sycamore Dr|"
    "Magnolia Ave|Hickory Ln|Aspen Ct|Dogwood Dr|Laurel St|Poplar Ave|Spruce St|Juniper Way|Hawthorne Rd|"
    "Greenwood Ave|Fairview Ave|Lakeview Dr|College Ave|School St|Market St|Bridge St|Water St|Front St|"
    "Grove St|Liberty St|Adams St|Monroe St|Clinton Ave|Harrison St|Cleveland Ave|Wilson Ave|Kingston Rd"
).split("|")

# Words for synthetic practice / facility names ("<City> <word> <suffix>").
PRACTICE_WORDS = (
    "Family|Community|Riverside|Lakeside|Hillcrest|Parkview|Valley|Summit|Harbor|Meadowbrook|Northside|"
    "Southside|Westgate|Eastwood|Cornerstone|Greenfield|Bayview|Crossroads|Heritage|Pinecrest"
).split("|")
