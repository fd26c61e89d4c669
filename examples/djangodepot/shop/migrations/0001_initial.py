from decimal import Decimal

from django.db import migrations, models

KNIVES = [
    ("KN-100", "Paring knife", "19.90"),
    ("KN-200", "Santoku", "64.00"),
    ("KN-300", "Chef's knife 20 cm", "89.50"),
    ("KN-400", "Bread knife", "42.00"),
    ("KN-500", "Boning knife", "38.75"),
]


def seed_products(apps, schema_editor):
    Product = apps.get_model("shop", "Product")
    db = schema_editor.connection.alias
    Product.objects.using(db).bulk_create(
        [Product(sku=sku, name=name, price=Decimal(price)) for sku, name, price in KNIVES]
    )


def unseed_products(apps, schema_editor):
    Product = apps.get_model("shop", "Product")
    db = schema_editor.connection.alias
    Product.objects.using(db).filter(sku__in=[sku for sku, _, _ in KNIVES]).delete()


class Migration(migrations.Migration):

    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Product",
            fields=[
                ("sku", models.TextField(primary_key=True, serialize=False)),
                ("name", models.TextField()),
                ("price", models.DecimalField(decimal_places=2, max_digits=10)),
            ],
            options={
                "ordering": ["sku"],
            },
        ),
        migrations.RunPython(seed_products, unseed_products),
    ]
