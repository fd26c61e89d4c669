<?php

namespace App\Repository;

use Doctrine\DBAL\Connection;

/** The knives for sale (table `product`). */
final class ProductRepository
{
    public function __construct(private Connection $db)
    {
    }

    /** @return list<array{sku: string, name: string, price: string}> */
    public function all(): array
    {
        return $this->db->fetchAllAssociative('SELECT sku, name, price FROM product ORDER BY sku');
    }

    public function exists(string $sku): bool
    {
        return false !== $this->db->fetchOne('SELECT 1 FROM product WHERE sku = ?', [$sku]);
    }
}
