<?php

namespace App\Controller;

use App\Repository\ProductRepository;
use Symfony\Component\HttpFoundation\Request;
use Symfony\Component\HttpFoundation\Response;
use Symfony\Component\HttpKernel\EventListener\AbstractSessionListener;

/**
 * The cart, in the session (stored in PostgreSQL): sku => quantity.
 * Both actions answer `N items` (text/plain), N the number of items in the cart.
 */
final class CartController
{
    public function __construct(private ProductRepository $products)
    {
    }

    /** GET /cart */
    public function show(Request $request): Response
    {
        // No session cookie, no session: a new visitor's cart is empty, and nothing is stored.
        $cart = $request->hasPreviousSession() ? $request->getSession()->get('cart', []) : [];

        return $this->answer(sprintf('%d items', array_sum($cart)));
    }

    /** POST /cart, form field `sku`: one more of that knife. */
    public function add(Request $request): Response
    {
        $sku = $request->request->get('sku');
        if (!\is_string($sku) || '' === $sku || !$this->products->exists($sku)) {
            return $this->answer('unknown sku', Response::HTTP_BAD_REQUEST);
        }

        $session = $request->getSession();
        $cart = $session->get('cart', []);
        $cart[$sku] = ($cart[$sku] ?? 0) + 1;
        $session->set('cart', $cart);

        return $this->answer(sprintf('%d items', array_sum($cart)));
    }

    private function answer(string $text, int $status = Response::HTTP_OK): Response
    {
        $response = new Response($text, $status, ['Content-Type' => 'text/plain; charset=UTF-8']);
        // Per visitor: never stored by Varnish nor the browser. (Symfony would otherwise add its
        // own `private, must-revalidate, max-age=0` for responses that used the session.)
        $response->headers->set('Cache-Control', 'private, no-store');
        $response->headers->set(AbstractSessionListener::NO_AUTO_CACHE_CONTROL_HEADER, 'true');

        return $response;
    }
}
