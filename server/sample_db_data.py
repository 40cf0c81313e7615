"""Reference data and column descriptions for the bundled `sample` database (see sample_db.py)."""

from __future__ import annotations

# (name, share of customers, legal suffix for companies, cities with the biggest first)
Country = tuple[str, float, str, tuple[str, ...]]

# Region name -> countries; shares are relative weights, so the USA, Germany and the UK dominate.
REGIONS: dict[str, tuple[Country, ...]] = {
    "North America": (
        (
            "United States",
            30,
            "Inc.",
            (
                "New York",
                "Los Angeles",
                "Chicago",
                "Houston",
                "Seattle",
                "Boston",
                "Atlanta",
                "Denver",
            ),
        ),
        ("Canada", 6, "Inc.", ("Toronto", "Vancouver", "Montreal", "Calgary")),
    ),
    "Europe": (
        ("Germany", 13, "GmbH", ("Berlin", "Munich", "Hamburg", "Frankfurt", "Cologne")),
        (
            "United Kingdom",
            11,
            "Ltd",
            ("London", "Manchester", "Birmingham", "Edinburgh", "Bristol"),
        ),
        ("France", 6, "SA", ("Paris", "Lyon", "Marseille", "Toulouse")),
        ("Netherlands", 4, "B.V.", ("Amsterdam", "Rotterdam", "Utrecht")),
        ("Spain", 4, "S.L.", ("Madrid", "Barcelona", "Valencia", "Seville")),
        ("Italy", 4, "S.p.A.", ("Milan", "Rome", "Turin", "Naples")),
        ("Sweden", 2, "AB", ("Stockholm", "Gothenburg", "Malmö")),
    ),
    "Latin America": (
        ("Brazil", 4, "Ltda.", ("São Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba")),
        ("Mexico", 4, "S.A. de C.V.", ("Mexico City", "Guadalajara", "Monterrey", "Puebla")),
        ("Argentina", 2, "S.A.", ("Buenos Aires", "Córdoba", "Rosario")),
        ("Colombia", 1.5, "S.A.S.", ("Bogotá", "Medellín", "Cali")),
    ),
    "Asia Pacific": (
        ("Japan", 5, "K.K.", ("Tokyo", "Osaka", "Yokohama", "Nagoya")),
        ("Australia", 5, "Pty Ltd", ("Sydney", "Melbourne", "Brisbane", "Perth")),
        ("India", 4, "Pvt Ltd", ("Mumbai", "Bengaluru", "Delhi", "Chennai", "Hyderabad")),
        ("Singapore", 2, "Pte Ltd", ("Singapore",)),
    ),
    "Middle East & Africa": (
        ("United Arab Emirates", 2, "LLC", ("Dubai", "Abu Dhabi")),
        ("South Africa", 2, "(Pty) Ltd", ("Johannesburg", "Cape Town", "Durban")),
        ("Egypt", 1.5, "S.A.E.", ("Cairo", "Alexandria")),
    ),
}


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Sales representatives per region (plus one regional manager each and one VP): 40 employees.
REPS_PER_REGION = {
    "North America": 9,
    "Europe": 12,
    "Latin America": 5,
    "Asia Pacific": 5,
    "Middle East & Africa": 3,
}

FIRST_NAMES = _words(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Daniel Karen Matthew Nancy Anthony Lisa Mark "
    "Emma Lukas Sophie Jonas Hannah Oliver Amelia Louis Chloé Lucas Camille Mateo Sofía "
    "Pablo Lucía Giulia Marco Elin Erik Gabriel Ana Diego Valentina Hiroshi Yuki Kenji Sakura "
    "Arjun Priya Rahul Ananya Wei Mei Omar Fatima Ahmed Layla Thabo Naledi Noah Olivia Liam Ava"
)
LAST_NAMES = (
    *_words(
        "Smith Johnson Williams Brown Jones Garcia Miller Davis Wilson Anderson Taylor Thomas "
        "Moore Martin Jackson White Harris Clark Lewis Walker Müller Schmidt Schneider Fischer "
        "Weber Wagner Becker Hoffmann Evans Wright Hughes Bernard Dubois Moreau Laurent Bakker "
        "Fernández López Martínez Rossi Russo Bianchi Andersson Johansson Silva Santos Oliveira "
        "Hernández González Rodríguez Tanaka Suzuki Sato Watanabe Patel Sharma Singh Kumar "
        "Chen Wang Tan Lim Al-Sayed Haddad Mansour Nkosi Dlamini Botha O'Brien Nguyen Kim"
    ),
    "de Jong",
)

COMPANY_PREFIXES = (
    *_words(
        "Northwind Summit Ironwood Silverline Brightpath Redstone Greenfield Harbor Cedar "
        "Atlas Pioneer Evergreen Keystone Lakeside Horizon Granite Meridian Oakridge Sterling "
        "Crescent Falcon Maple Orion Pinnacle Riverbend Sunrise Titan Vantage Westport Apex Beacon "
        "Cobalt Delta Everest Frontier Highland Juniper Lighthouse Quantum"
    ),
    "Blue River",
)
COMPANY_KINDS = (
    "Logistics",
    "Industries",
    "Holdings",
    "Manufacturing",
    "Analytics",
    "Consulting",
    "Healthcare",
    "Foods",
    "Energy",
    "Retail Group",
    "Engineering",
    "Media",
    "Hospitality",
    "Construction",
    "Pharma",
    "Financial",
)
SMALL_BUSINESS_TRADES = (
    "Bakery",
    "Hardware",
    "Bookshop",
    "Café",
    "Florist",
    "Print Shop",
    "Bike Shop",
    "Pharmacy",
    "Design Studio",
    "Garage",
    "Dental Practice",
    "Yoga Studio",
    "Toy Store",
    "Garden Centre",
    "Law Office",
    "Deli",
)

# Category -> (description, "Product name list price; ..."); list prices are in USD as of 2024.
CATALOG: dict[str, tuple[str, str]] = {
    "Books": (
        "Printed books: fiction, non-fiction, cookbooks, guides and children's books.",
        "The Quiet Harbor 16.99; Midnight in Lisbon 14.99; The Last Cartographer 18.99; "
        "Orbit of Ash 15.99; A Garden in Winter 13.99; The Salt Road 17.99; "
        "Everyday Italian Cookbook 29.99; Plant-Based Kitchen 27.99; Bread Basics 22.99; "
        "Python for Data Analysis 49.99; Practical SQL 39.99; Clean Architecture Handbook 44.99; "
        "Japan Travel Guide 24.99; Iceland Travel Guide 21.99; Birds of North America 34.99; "
        "Atlas of World History 59.99; The Little Red Fox 11.99; Counting Stars 9.99; "
        "Dinosaur Adventures 12.99; Leadership in Practice 26.99; The Habit Ledger 19.99; "
        "Stoic Mornings 18.99; Biography of a River 23.99; Mountains of the Moon 21.99; "
        "Night Train to Oslo 15.49",
    ),
    "Electronics": (
        "Consumer electronics and computer accessories.",
        "Wireless Earbuds 59.99; Noise-Cancelling Headphones 199.99; Bluetooth Speaker 79.99; "
        "Smartwatch 249.99; Fitness Tracker 89.99; 27-inch 4K Monitor 329.99; "
        "Mechanical Keyboard 119.99; Wireless Mouse 29.99; HD Webcam 69.99; "
        "USB-C Charger 65W 39.99; Power Bank 20000mAh 49.99; USB-C Hub 44.99; "
        "E-Reader 139.99; Tablet 10-inch 399.99; Portable SSD 1TB 109.99; "
        "Wi-Fi 6 Router 159.99; Smart Plug 2-Pack 24.99; Action Camera 279.99; "
        "Laptop Stand 34.99; Streaming Stick 49.99",
    ),
    "Office Supplies": (
        "Paper, writing instruments, desk accessories and small office equipment.",
        "Copy Paper A4 500 Sheets 8.99; Gel Pens 12-Pack 11.99; Highlighters 6-Pack 6.99; "
        "Spiral Notebook 4.99; Hardcover Journal 16.99; Sticky Notes 12-Pack 9.99; "
        "Stapler 14.99; Staples 5000 Count 4.49; Desk Organizer 24.99; Label Maker 39.99; "
        "Laser Printer Toner 79.99; Inkjet Cartridge Combo 49.99; Whiteboard 36x24 54.99; "
        "Dry-Erase Markers 8-Pack 10.99; File Folders 50-Pack 15.99; Paper Shredder 129.99; "
        "Calculator 19.99; Envelopes 100-Pack 12.49; Binder Clips Assorted 7.99",
    ),
    "Furniture": (
        "Office and home furniture: desks, chairs, storage and lighting.",
        "Ergonomic Office Chair 289.99; Standing Desk 499.99; Writing Desk 199.99; "
        "Bookcase 5-Shelf 149.99; Filing Cabinet 2-Drawer 179.99; Conference Table 899.99; "
        "Guest Chair 119.99; Desk Lamp LED 44.99; Floor Lamp 89.99; Monitor Arm 79.99; "
        "Footrest 39.99; Storage Cabinet 249.99; Drafting Stool 139.99; Sofa Bed 649.99; "
        "Coffee Table 229.99; Bedside Table 99.99; Room Divider 159.99",
    ),
    "Toys": (
        "Toys and games for children and families.",
        "Building Blocks 500 Pieces 39.99; Wooden Train Set 59.99; Plush Bear 19.99; "
        "Remote Control Car 49.99; Board Game Night Pack 34.99; Jigsaw Puzzle 1000 Pieces 17.99; "
        "Science Kit 44.99; Art and Craft Box 29.99; Doll House 89.99; Kite 14.99; "
        "Card Game Classic 9.99; Magnetic Tiles 64.99; Toy Kitchen 119.99; "
        "Marble Run 54.99; Stacking Rings 12.99; Water Blaster 16.99; Robot Coding Kit 99.99",
    ),
    "Sports": (
        "Sports, fitness and outdoor equipment.",
        "Yoga Mat 29.99; Adjustable Dumbbells 249.99; Resistance Bands Set 24.99; "
        "Running Shoes 119.99; Football Size 5 24.99; Basketball 29.99; Tennis Racket 89.99; "
        "Cycling Helmet 59.99; Water Bottle Insulated 24.99; Jump Rope 12.99; "
        "Camping Tent 2-Person 149.99; Sleeping Bag 79.99; Hiking Backpack 30L 89.99; "
        "Foam Roller 22.99; Kettlebell 16kg 54.99; Swim Goggles 17.99; Trekking Poles 49.99",
    ),
    "Garden": (
        "Garden tools, plant care and outdoor living.",
        "Garden Hose 25m 39.99; Pruning Shears 24.99; Cordless Lawn Mower 349.99; "
        "Leaf Blower 129.99; Raised Garden Bed 89.99; Potting Soil 40L 12.99; "
        "Seed Starter Kit 19.99; Watering Can 14.99; Patio Chair 69.99; "
        "Solar Path Lights 6-Pack 34.99; Compost Bin 59.99; Garden Gloves 9.99; "
        "Bird Feeder 22.99; Wheelbarrow 99.99; Hedge Trimmer 89.99; Outdoor Parasol 119.99",
    ),
    "Kitchen": (
        "Cookware, small appliances and kitchen tools.",
        "Chef's Knife 8-inch 79.99; Cast Iron Skillet 44.99; Nonstick Pan Set 129.99; "
        "Dutch Oven 5.5qt 99.99; Espresso Machine 399.99; Drip Coffee Maker 69.99; "
        "Electric Kettle 39.99; Blender 89.99; Stand Mixer 349.99; Air Fryer 119.99; "
        "Toaster 2-Slice 34.99; Cutting Board Bamboo 24.99; Measuring Cups Set 14.99; "
        "Food Storage Containers 19.99; Knife Block Set 149.99; Salad Spinner 27.99; "
        "Rice Cooker 79.99; Digital Kitchen Scale 24.99; Slow Cooker 59.99",
    ),
}

VIEW_ORDER_TOTALS = "order_totals"

# The sidecar read by the knowledge index: table -> (table comment, column -> comment).
COMMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "regions": (
        "The five sales regions the company divides the world into.",
        {
            "region_id": "Primary key of the region.",
            "name": "Region name: 'North America', 'Europe', 'Latin America', 'Asia Pacific' or "
            "'Middle East & Africa'.",
        },
    ),
    "employees": (
        "Sales staff: one VP of Sales, one regional sales manager per region and the sales "
        "representatives who report to them.",
        {
            "employee_id": "Primary key of the employee.",
            "first_name": "Employee's given name.",
            "last_name": "Employee's family name.",
            "title": "Job title: 'VP of Sales', 'Regional Sales Manager', 'Senior Sales "
            "Representative' or 'Sales Representative'.",
            "manager_id": "employee_id of the direct manager (employees.employee_id); NULL only "
            "for the VP of Sales, the top of the hierarchy.",
            "region_id": "Region the employee covers (regions.region_id); NULL for the VP of "
            "Sales, who covers all regions.",
            "hire_date": "Date the employee joined, ISO 'YYYY-MM-DD'.",
            "email": "Work email address (unique).",
        },
    ),
    "customers": (
        "Customers who have signed up; some have never placed an order.",
        {
            "customer_id": "Primary key of the customer; increases with signup_date.",
            "name": "Customer name: a person for 'Consumer', a company for 'Corporate' and "
            "'Small Business' (unique).",
            "segment": "Customer segment: 'Consumer', 'Corporate' or 'Small Business'.",
            "country": "Country of the billing address, English name (e.g. 'United States', "
            "'Germany').",
            "city": "City of the billing address.",
            "region_id": "Sales region of the customer's country (regions.region_id).",
            "signup_date": "Date the customer account was created, ISO 'YYYY-MM-DD'; no order "
            "precedes it.",
            "email": "Contact email address (unique).",
        },
    ),
    "categories": (
        "Product categories of the catalog.",
        {
            "category_id": "Primary key of the category.",
            "name": "Category name, e.g. 'Books', 'Electronics', 'Office Supplies', 'Furniture'.",
            "description": "What the category contains.",
        },
    ),
    "products": (
        "The product catalog, including discontinued products.",
        {
            "product_id": "Primary key of the product.",
            "name": "Product name (unique).",
            "category_id": "Category of the product (categories.category_id).",
            "unit_price": "Current (2024) list price of one unit in USD; prices rose about 3% "
            "each January, so older order lines were charged less.",
            "unit_cost": "Cost of one unit to the company in USD; margin = unit_price - unit_cost.",
            "launched_on": "Date the product went on sale, ISO 'YYYY-MM-DD'; it is never sold "
            "earlier.",
            "discontinued": "1 if the product is no longer sold, 0 if it is still active.",
        },
    ),
    "orders": (
        "Customer orders (headers) from 2022-01-01 to 2024-12-31; the lines are in order_items. "
        "Data is as of 2024-12-31.",
        {
            "order_id": "Primary key of the order; increases with order_date.",
            "customer_id": "Customer who placed the order (customers.customer_id).",
            "employee_id": "Sales representative or manager credited with the order "
            "(employees.employee_id), always from the customer's region.",
            "order_date": "Date the order was placed, ISO 'YYYY-MM-DD'.",
            "ship_date": "Date the order left the warehouse, ISO 'YYYY-MM-DD'; NULL if it has "
            "not shipped ('pending') or was 'cancelled'.",
            "status": "Order status: 'delivered', 'shipped' (in transit), 'pending' (not yet "
            "shipped) or 'cancelled'. Revenue usually excludes 'cancelled'.",
            "channel": "Sales channel: 'online' (web shop), 'retail' (stores) or 'partner' "
            "(resellers).",
        },
    ),
    "order_items": (
        "Order lines: one product per line, 1 to 5 lines per order. Line revenue = quantity * "
        "unit_price * (1 - discount).",
        {
            "order_id": "Order the line belongs to (orders.order_id).",
            "line_no": "Line number within the order, starting at 1.",
            "product_id": "Product ordered (products.product_id); at most once per order.",
            "quantity": "Number of units ordered.",
            "unit_price": "Price charged per unit in USD before discount: the product's list "
            "price in the year of the order.",
            "discount": "Discount as a fraction of the price: 0, 0.05, 0.1, 0.15 or 0.2 "
            "(0.1 means 10% off).",
        },
    ),
    "returns": (
        "Products returned by customers from delivered orders.",
        {
            "return_id": "Primary key of the return.",
            "order_id": "Order the returned goods came from (orders.order_id).",
            "product_id": "Product returned (products.product_id); matches an order_items line "
            "of the same order.",
            "return_date": "Date the return was received, ISO 'YYYY-MM-DD'.",
            "quantity": "Number of units returned; at most the quantity ordered on that line.",
            "reason": "Reason given: 'damaged', 'wrong item', 'not as described', "
            "'changed mind' or 'late delivery'.",
        },
    ),
    VIEW_ORDER_TOTALS: (
        "View: one row per order with its total value after discounts, including cancelled "
        "orders (join orders to filter by status).",
        {
            "order_id": "The order (orders.order_id).",
            "order_date": "Date the order was placed, ISO 'YYYY-MM-DD'.",
            "customer_id": "Customer who placed the order (customers.customer_id).",
            "total": "Sum over the order's lines of quantity * unit_price * (1 - discount), in "
            "USD rounded to cents.",
        },
    ),
}
