from django.urls import path

from shop import views

urlpatterns = [
    path("", views.index, name="index"),
    path("cart", views.cart, name="cart"),
    path("health", views.health, name="health"),
]
