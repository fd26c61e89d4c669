from django.db import connection
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from .models import Product

CART_KEY = "cart"


def _text(body, status=200):
    response = HttpResponse(f"{body}\n", status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    return response


def _count(cart):
    return sum(cart.values())


@require_GET
def index(request):
    response = render(request, "base.html", {"products": Product.objects.all()})
    response["Cache-Control"] = "public, s-maxage=300"
    return response


@csrf_exempt
@require_http_methods(["GET", "POST"])
def cart(request):
    cart = request.session.get(CART_KEY, {})
    if request.method == "POST":
        sku = request.POST.get("sku", "")
        if not sku or not Product.objects.filter(sku=sku).exists():
            return _text("unknown sku", status=400)
        cart[sku] = cart.get(sku, 0) + 1
        request.session[CART_KEY] = cart
    return _text(f"{_count(cart)} items")


@require_GET
def health(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        return _text("database unavailable", status=503)
    return _text("ok")
