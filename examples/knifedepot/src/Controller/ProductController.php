<?php

namespace App\Controller;

use App\Repository\ProductRepository;
use Symfony\Bundle\FrameworkBundle\Controller\AbstractController;
use Symfony\Component\HttpFoundation\Response;

final class ProductController extends AbstractController
{
    /** GET /: the product list, the same for everyone, so Varnish keeps it for 5 minutes. */
    public function index(ProductRepository $products): Response
    {
        $response = $this->render('product/index.html.twig', ['products' => $products->all()]);
        $response->setPublic();
        $response->setSharedMaxAge(300);

        return $response;
    }
}
